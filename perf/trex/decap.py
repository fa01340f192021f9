"""ETR decapsulation: the remote sites' xTRs -> local hosts, LISP-encapsulated.

Direction 1 (TRex port 1 -> pxtr rloc0): outer IPv4 (DF) from the remote xTRs' RLOCs
100.64.3.1-8 to our RLOC 100.64.1.1, UDP to 4341 from varying source ports (the flow entropy
an ITR puts there), a LISP header with the N bit (nonce) and the I bit (instance-ID 0), and
inside UDP from --count remote EIDs (10.64.0.0/13; each packet's outer source is its inner
source's site) to the 16 local hosts 10.1.1.100-115; pxtr decapsulates and delivers to the
hosts (static neighbours at TRex port 0's MAC), out of eid0 (TRex port 0). --size is the
inner frame's; the frames on the wire are 50 bytes longer.

Direction 0 (TRex port 0 -> pxtr eid0): the hosts' replies, plain (the same as
eid_to_rloc.py), so `start -f decap.py -p 0 1` is a two-way conversation.

Tunables: --size 64 | imix | <frame bytes>, --count N. Example (TRex console):
    start -f perf/trex/decap.py -p 1 -m 5mpps -t --size 64
"""

import pxtr_lab


class STLS1(object):
    def get_streams(self, tunables=None, **kwargs):
        args = pxtr_lab.parser("decap.py", __doc__.splitlines()[0], count=100000).parse_args(list(tunables or []))
        direction = kwargs.get("direction", 0)
        pxtr_lab.check_direction(direction)
        if direction == 1:
            return pxtr_lab.etr_streams(args.size, args.count)
        return pxtr_lab.itr_streams(args.size, args.count)


def register():
    return STLS1()
