// The estimators POST /probe offers, by name (the request schema and the outbound-bytes limits
// both need them, so they live apart from the prober).

export const PROBE_METHODS = ['forward', 'central', 'spsa', 'nes', 'occlusion', 'shapley'] as const;
export type ProbeMethod = (typeof PROBE_METHODS)[number];
