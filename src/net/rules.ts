// The iptables rules skiff's state calls for, computed from scratch: NAT and
// forwarding per bridge network, isolation between networks, and DNAT plus
// a forward accept per published port.
import type { RuleSet } from './iptables.js';
import type { NetworkRecord, PortMapping } from './store.js';

export interface PublishedPort extends PortMapping {
  bridge: string;
  containerIp: string;
}

export function buildRules(networks: NetworkRecord[], ports: PublishedPort[]): RuleSet {
  const bridges = networks.filter((n) => n.Driver === 'bridge' && n.Bridge);
  const rules: RuleSet = { dnat: [], postrouting: [], forward: [] };
  for (const n of bridges) {
    for (const o of bridges) if (o !== n) rules.forward.push(['-i', n.Bridge!, '-o', o.Bridge!, '-j', 'DROP']);
  }
  for (const p of ports) {
    const dst = p.hostIp === '0.0.0.0' ? [] : ['-d', `${p.hostIp}/32`];
    // Loopback publications are the userland proxy's alone.
    if (!p.hostIp.startsWith('127.')) {
      rules.dnat.push(['!', '-i', p.bridge, ...dst, '-p', p.proto, '-m', p.proto, '--dport', String(p.hostPort), '-j', 'DNAT', '--to-destination', `${p.containerIp}:${p.containerPort}`]);
    }
    rules.forward.push(['-d', `${p.containerIp}/32`, '!', '-i', p.bridge, '-o', p.bridge, '-p', p.proto, '-m', p.proto, '--dport', String(p.containerPort), '-j', 'ACCEPT']);
  }
  for (const n of bridges) {
    const br = n.Bridge!;
    const subnet = n.IPAM.Config[0]?.Subnet;
    if (n.Internal) {
      rules.forward.push(['-i', br, '!', '-o', br, '-j', 'DROP'], ['!', '-i', br, '-o', br, '-j', 'DROP']);
    } else {
      rules.forward.push(['-o', br, '-m', 'conntrack', '--ctstate', 'RELATED,ESTABLISHED', '-j', 'ACCEPT'], ['-i', br, '!', '-o', br, '-j', 'ACCEPT']);
      if (subnet && n.Options['com.docker.network.bridge.enable_ip_masquerade'] !== 'false') rules.postrouting.push(['-s', subnet, '!', '-o', br, '-j', 'MASQUERADE']);
    }
    rules.forward.push(['-i', br, '-o', br, '-j', 'ACCEPT']);
  }
  return rules;
}
