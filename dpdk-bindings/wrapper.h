/* What pxtr binds from DPDK. Keep this list to what src/dpdk uses. */
#include <rte_config.h>
#include <rte_common.h>
#include <rte_errno.h>
#include <rte_eal.h>
#include <rte_lcore.h>
#include <rte_launch.h>
#include <rte_cycles.h>
#include <rte_memory.h>
#include <rte_mempool.h>
#include <rte_mbuf.h>
#include <rte_ethdev.h>
#include <rte_dev.h>
#include <rte_bus_vdev.h>
#include <rte_ring.h>
#include <rte_lpm.h>
#include <rte_lpm6.h>
#include <rte_version.h>

/* Macros and thread-local state that bindgen cannot see: small functions in shim.c. */
int pxtr_rte_errno(void);
void pxtr_rte_errno_set(int value);
const char *pxtr_rte_version(void);

/* Bit masks DPDK defines with RTE_BIT64(): values exported by shim.c. */
extern const uint64_t pxtr_ETH_RSS_IP;
extern const uint64_t pxtr_ETH_RSS_UDP;
extern const uint64_t pxtr_ETH_RSS_TCP;
extern const uint64_t pxtr_ETH_RX_OFFLOAD_IPV4_CKSUM;
extern const uint64_t pxtr_ETH_RX_OFFLOAD_UDP_CKSUM;
extern const uint64_t pxtr_ETH_RX_OFFLOAD_TCP_CKSUM;
extern const uint64_t pxtr_ETH_RX_OFFLOAD_RSS_HASH;
extern const uint64_t pxtr_ETH_TX_OFFLOAD_IPV4_CKSUM;
extern const uint64_t pxtr_ETH_TX_OFFLOAD_UDP_CKSUM;
extern const uint64_t pxtr_ETH_TX_OFFLOAD_TCP_CKSUM;
extern const uint64_t pxtr_ETH_TX_OFFLOAD_OUTER_IPV4_CKSUM;
extern const uint64_t pxtr_ETH_TX_OFFLOAD_OUTER_UDP_CKSUM;
extern const uint64_t pxtr_ETH_TX_OFFLOAD_MULTI_SEGS;
extern const uint64_t pxtr_ETH_TX_OFFLOAD_MBUF_FAST_FREE;
