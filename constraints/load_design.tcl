# The design as both OpenSTA scripts load it (constraints/sta.tcl for timing,
# constraints/energy/power.tcl for power): gen/synth.py sources this file at the top of each.
#
# Variables set before it: liberty (the tech's unpacked liberty files, read in this order),
# netlist and top (the mapped netlist and its top module), operating_conditions (the tech's
# `operating_conditions` in constraints/techs.toml, or ""), sdc (constraints/clock.sdc, which
# also reads clock_ns and clock_port).

foreach file $liberty {
    read_liberty $file
}
read_verilog $netlist
# The netlist is hierarchical: instance and pin names in the reports are paths from the top,
# `/`-separated (`lanes/p[3]_reg/CLK`), the same as in the Verilog.
link_design $top
# sky130hd's liberty names its default operating conditions before defining them, and OpenSTA
# 2.0.17 then finds none (it warns "default_operating_condition ... not found"); delays are
# unaffected, internal power is not (it reads 0), so they are named explicitly.
if {$operating_conditions ne ""} {
    set_operating_conditions $operating_conditions
}
# Constraint values and reports in ns for every tech (asap7's liberty counts in ps).
set_cmd_units -time ns
source $sdc
