"""PITR: non-LISP sites -> VMs in the cloud (the seed's "non-LISP site to public cloud" walk).

Direction 0 (TRex port 0 -> pxtr eid0): a branch's hosts (172.20.0.0/16) reach --count cloud
VMs (default 1,000 of 10.2.0.0/16) through the enterprise gateway 10.1.1.1 on the server
subnet, which sends them to pxtr's MAC (pxtr answered its ARP for the VMs by proxy-ARP). pxtr
takes them like any frame to its MAC on an EID port: looks the VM up and encapsulates to the
cloud xTR's RLOC 100.64.2.1, out of rloc0 (TRex port 1).

Direction 1 (TRex port 1 -> pxtr rloc0): Internet hosts (198.18.0.0/15) reach the cloud VMs
through the underlay, which routes the EID prefixes to the PxTR's rloc0 (a PITR in the RFC
6830 sense: plain IP to pxtr's MAC on an RLOC port of a PxTR, docs/dataplane.md). pxtr
encapsulates them to 100.64.2.1 and sends them back out of rloc0 (TRex port 1).

Tunables: --size 64 | imix | <frame bytes>, --count N (at most 65,536). Example:
    start -f perf/trex/non_lisp_site.py -p 0 1 -m 2mpps -t --size imix
"""

import pxtr_lab


class STLS1(object):
    def get_streams(self, tunables=None, **kwargs):
        args = pxtr_lab.parser("non_lisp_site.py", __doc__.splitlines()[0], count=1000).parse_args(list(tunables or []))
        direction = kwargs.get("direction", 0)
        pxtr_lab.check_direction(direction)
        if direction == 0:
            return pxtr_lab.gateway_pitr_streams(args.size, args.count)
        return pxtr_lab.underlay_pitr_streams(args.size, args.count)


def register():
    return STLS1()
