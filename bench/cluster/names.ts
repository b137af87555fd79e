/** Contender names of the cluster bench group, shared by the group and its worker. */
export const SIMPLE = 'cachette Cache facade (SimpleCache in the worker)'
export const CLUSTER = 'cachette Cache facade (ClusterCache, store in the primary)'
export const REDIS = 'cachette Cache facade (RedisCache, local redis-server)'
/** Gets per op in the concurrent comparison. */
export const CONCURRENT = 64
