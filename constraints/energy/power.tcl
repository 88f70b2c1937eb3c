# sparsegen's power analysis (OpenSTA `sta -no_init -exit`), run by gen/synth.py's
# `static_power` (for gen/energy.py) on a netlist mapped by constraints/synth.ys.
#
# gen/synth.py runs a script made of `set` lines for these variables followed by this file:
#   liberty, netlist, top, operating_conditions, sdc, load_design   as for constraints/sta.tcl
#   activity        transitions per clock period given to every non-clock pin (-global)
#   input_activity  the same for the data input ports (-input)
# The clock (constraints/clock.sdc, ideal) toggles its pins twice a period. gen/synth.py reads
# the `Total` line of report_power (watts) and fails on any line starting with "Error".

source $load_design
# A uniform, stated activity: OpenSTA 2.0.17 gives the global figure to every pin that is not a
# clock (it propagates nothing from the inputs once a global activity is set).
set_power_activity -global -activity $activity
set_power_activity -input -activity $input_activity
report_power -digits 6
