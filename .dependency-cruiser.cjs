// The layer order of docs/architecture.md as rules: imports point down, never
// up, and front doors never reach a driver (they go through runtime/ and core/).
// `npm test` runs it (scripts/layers.sh); a violation fails CI.
const above = (...folders) => `^(${folders.join('|')})/`;

// From the bottom: each folder may import only folders below it.
const floors = [
  ['common'],
  ['netlink'],
  ['store'],
  ['ipam', 'firewall', 'cluster'],
  ['core'],
  ['drivers'],
  ['runtime'],
  ['plugins'],
  ['agent'],
  ['cli'],
  ['bin', 'scripts'],
];
const production = floors.flat();

const upward = floors.map((floor, i) => ({
  name: `${floor.join('-')}-imports-upward`,
  comment: `${floor.join(', ')} may import only what lies below it: ${floors.slice(0, i).flat().join(', ') || 'nothing of strand'}`,
  severity: 'error',
  from: { path: above(...floor) },
  to: { path: above(...floors.slice(i + 1).flat(), 'test', 'netns-tests', 'bench') },
}));

module.exports = {
  forbidden: [
    ...upward,
    {
      name: 'services-import-each-other',
      comment: 'ipam, firewall and cluster are one floor: none uses another',
      severity: 'error',
      from: { path: '^(ipam|firewall|cluster)/' },
      to: { path: '^(ipam|firewall|cluster)/', pathNot: '^$1/' },
    },
    {
      name: 'front-door-imports-a-driver',
      comment: 'front doors attach through core (runtime/ opens it with the drivers); they never hold a driver',
      severity: 'error',
      from: { path: '^(plugins|agent|cli|bin|scripts)/' },
      to: { path: '^drivers/' },
    },
    {
      name: 'driver-imports-another-driver',
      comment: 'each driver stands alone behind core\'s Driver interface (drivers/no-interface.ts is their shared helper)',
      severity: 'error',
      from: { path: '^drivers/([^/]+)/', pathNot: '^drivers/overlay/' },
      to: { path: '^drivers/', pathNot: ['^drivers/$1/', '^drivers/no-interface\\.ts$'] },
    },
    {
      name: 'overlay-imports-a-driver-but-bridge',
      comment: 'an overlay network is a bridge per host plus a VXLAN device (as Docker\'s overlay builds on its bridge): it may use the bridge driver, no other',
      severity: 'error',
      from: { path: '^drivers/overlay/' },
      to: { path: '^drivers/', pathNot: ['^drivers/(overlay|bridge)/', '^drivers/no-interface\\.ts$'] },
    },
    {
      name: 'front-doors-import-each-other',
      comment: 'the CNI and Docker front doors share only what lies below them',
      severity: 'error',
      from: { path: '^plugins/(cni|docker)/' },
      to: { path: '^plugins/', pathNot: '^plugins/$1/' },
    },
    {
      name: 'test-trees-import-each-other',
      comment: 'the unit tests, the namespace tests and the benchmarks share helpers only through test/support/',
      severity: 'error',
      from: { path: '^(test|netns-tests|bench)/' },
      to: { path: '^(test|netns-tests)/', pathNot: ['^test/support/', '^$1/'] },
    },
    {
      name: 'no-circular',
      comment: 'a cycle hides which of two files is the lower layer',
      severity: 'error',
      from: { path: above(...production) },
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|dist)/' },
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
  },
};
