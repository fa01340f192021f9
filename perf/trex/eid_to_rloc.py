"""ITR encapsulation: local hosts on the server subnet -> many remote EIDs.

Direction 0 (TRex port 0 -> pxtr eid0): UDP from the 16 local hosts 10.1.1.100-115 to --count
remote EIDs (default 100,000, a repeatable random set in 10.64.0.0/13, the 8 remote sites'
/16s); pxtr looks each up and encapsulates it to its site's RLOC (100.64.3.1-8), out of rloc0
(TRex port 1).

Direction 1 (TRex port 1 -> pxtr rloc0): the reverse traffic, as the remote xTRs send it
(LISP-encapsulated to our RLOC, the same as decap.py), so `start -f eid_to_rloc.py -p 0 1` is a
two-way conversation.

Tunables: --size 64 | imix | <frame bytes>, --count N. Example (TRex console):
    start -f perf/trex/eid_to_rloc.py -p 0 -m 5mpps -t --size imix --count 100000
"""

import pxtr_lab


class STLS1(object):
    def get_streams(self, tunables=None, **kwargs):
        args = pxtr_lab.parser("eid_to_rloc.py", __doc__.splitlines()[0], count=100000).parse_args(list(tunables or []))
        direction = kwargs.get("direction", 0)
        pxtr_lab.check_direction(direction)
        if direction == 0:
            return pxtr_lab.itr_streams(args.size, args.count)
        return pxtr_lab.etr_streams(args.size, args.count)


def register():
    return STLS1()
