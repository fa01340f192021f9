/* Accessors for DPDK macros that have no symbol of their own. */
#include "wrapper.h"

int pxtr_rte_errno(void) { return rte_errno; }

void pxtr_rte_errno_set(int value) { rte_errno = value; }

const char *pxtr_rte_version(void) { return rte_version(); }

const uint64_t pxtr_ETH_RSS_IP = RTE_ETH_RSS_IP;
const uint64_t pxtr_ETH_RSS_UDP = RTE_ETH_RSS_UDP;
const uint64_t pxtr_ETH_RSS_TCP = RTE_ETH_RSS_TCP;
const uint64_t pxtr_ETH_RX_OFFLOAD_IPV4_CKSUM = RTE_ETH_RX_OFFLOAD_IPV4_CKSUM;
const uint64_t pxtr_ETH_RX_OFFLOAD_UDP_CKSUM = RTE_ETH_RX_OFFLOAD_UDP_CKSUM;
const uint64_t pxtr_ETH_RX_OFFLOAD_TCP_CKSUM = RTE_ETH_RX_OFFLOAD_TCP_CKSUM;
const uint64_t pxtr_ETH_RX_OFFLOAD_RSS_HASH = RTE_ETH_RX_OFFLOAD_RSS_HASH;
const uint64_t pxtr_ETH_TX_OFFLOAD_IPV4_CKSUM = RTE_ETH_TX_OFFLOAD_IPV4_CKSUM;
const uint64_t pxtr_ETH_TX_OFFLOAD_UDP_CKSUM = RTE_ETH_TX_OFFLOAD_UDP_CKSUM;
const uint64_t pxtr_ETH_TX_OFFLOAD_TCP_CKSUM = RTE_ETH_TX_OFFLOAD_TCP_CKSUM;
const uint64_t pxtr_ETH_TX_OFFLOAD_OUTER_IPV4_CKSUM = RTE_ETH_TX_OFFLOAD_OUTER_IPV4_CKSUM;
const uint64_t pxtr_ETH_TX_OFFLOAD_OUTER_UDP_CKSUM = RTE_ETH_TX_OFFLOAD_OUTER_UDP_CKSUM;
const uint64_t pxtr_ETH_TX_OFFLOAD_MULTI_SEGS = RTE_ETH_TX_OFFLOAD_MULTI_SEGS;
const uint64_t pxtr_ETH_TX_OFFLOAD_MBUF_FAST_FREE = RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE;
