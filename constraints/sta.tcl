# sparsegen's static timing analysis (OpenSTA `sta -no_init -exit`), run by gen/synth.py on the
# netlist that constraints/synth.ys mapped and wrote (netlist.v: the same cells whose area is
# reported, hierarchy kept, bus ports split, no attributes or expressions).
#
# gen/synth.py runs a script made of `set` lines for the variables of constraints/load_design.tcl
# (and `load_design`, its path) followed by this file.
# gen/synth.py reads the report from this script's output (Startpoint, Endpoint, the path, the
# slack) and treats any line starting with "Error" as a failure: OpenSTA 2.0.17 prints errors
# and carries on with exit status 0. The whole text is part of the synthesis cache key.

source $load_design
# The single worst setup path (latest arrival against the clock period). Hold is not checked.
report_checks -path_delay max -group_count 1 -digits 4 -format full -fields {fanout cap slew}
