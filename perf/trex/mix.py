"""A mix of the site-to-site and non-LISP traffic, per side.

Direction 0 (TRex port 0 -> pxtr eid0): eid_to_rloc.py's hosts -> remote EIDs (ITR) and
non_lisp_site.py's branch -> cloud VMs through the enterprise gateway.
Direction 1 (TRex port 1 -> pxtr rloc0): decap.py's encapsulated traffic to the hosts (ETR)
and non_lisp_site.py's Internet hosts -> cloud VMs (PITR).

--pitr-percent of each side's packets are the non-LISP ones (default 20). --count is the
remote EIDs of the site-to-site part; the non-LISP part goes to 1,000 cloud VMs.

Tunables: --size 64 | imix | <frame bytes>, --count N, --pitr-percent P. Example:
    start -f perf/trex/mix.py -p 0 1 -m 5mpps -t --size imix --pitr-percent 10
"""

import pxtr_lab


class STLS1(object):
    def get_streams(self, tunables=None, **kwargs):
        p = pxtr_lab.parser("mix.py", __doc__.splitlines()[0], count=100000)
        p.add_argument("--pitr-percent", "--pitr_percent", dest="pitr_percent", type=int, default=20, help="share of non-LISP packets")
        args = p.parse_args(list(tunables or []))
        if not 0 < args.pitr_percent < 100:
            raise ValueError("--pitr-percent must be between 1 and 99, not %d" % args.pitr_percent)
        direction = kwargs.get("direction", 0)
        pxtr_lab.check_direction(direction)
        lisp, plain = 100 - args.pitr_percent, args.pitr_percent
        if direction == 0:
            return pxtr_lab.itr_streams(args.size, args.count, lisp) + pxtr_lab.gateway_pitr_streams(
                args.size, 1000, plain
            )
        return pxtr_lab.etr_streams(args.size, args.count, lisp) + pxtr_lab.underlay_pitr_streams(
            args.size, 1000, plain
        )


def register():
    return STLS1()
