# sparsegen's static timing analysis (OpenSTA `sta -no_init -exit`), run by gen/synth.py on the
# netlist that constraints/synth.ys mapped and wrote (netlist.v: the same cells whose area is
# reported, hierarchy kept, bus ports split, no attributes or expressions).
#
# gen/synth.py runs a script made of `set` lines for these variables followed by this file:
#   liberty               the tech's liberty files (unpacked), read in this order
#   netlist, top          the mapped netlist and its top module
#   operating_conditions  the tech's `operating_conditions` in constraints/techs.toml, or ""
#   sdc                   constraints/clock.sdc, which also reads clock_ns and clock_port
# gen/synth.py reads the report from this script's output (Startpoint, Endpoint, the path, the
# slack) and treats any line starting with "Error" as a failure: OpenSTA 2.0.17 prints errors
# and carries on with exit status 0. The whole text is part of the synthesis cache key.

foreach file $liberty {
    read_liberty $file
}
read_verilog $netlist
# The netlist is hierarchical: instance and pin names in the report are paths from the top,
# `/`-separated (`lanes/p[3]_reg/CLK`), the same as in the Verilog.
link_design $top
# sky130hd's liberty names its default operating conditions before defining them, and OpenSTA
# 2.0.17 then finds none (it warns "default_operating_condition ... not found"); delays are
# unaffected, internal power is not, so they are named explicitly.
if {$operating_conditions ne ""} {
    set_operating_conditions $operating_conditions
}
# Constraint values and reports in ns for every tech (asap7's liberty counts in ps).
set_cmd_units -time ns
source $sdc
# The single worst setup path (latest arrival against the clock period). Hold is not checked.
report_checks -path_delay max -group_count 1 -digits 4 -format full -fields {fanout cap slew}
