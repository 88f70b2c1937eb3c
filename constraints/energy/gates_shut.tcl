# The design loaded as constraints/load_design.tcl loads it, with its clock gates held shut:
# gen/synth.py's `static_power(..., clock_gates_shut=PATTERN)` sets `load_design` to this file
# (for constraints/energy/power.tcl) and these variables:
#   design_loader   constraints/load_design.tcl
#   clock_gates     a pattern of the liberty's integrated clock-gating cells (sky130hd:
#                   *dlclkp*)
# OpenSTA carries the clock through an ICG to the flip-flops it gates whatever the ICG's enable
# (their clock pins toggle twice a period). A gate whose enable stays low passes no edge:
# disabling the gates' timing arcs stops the clock at them, so OpenSTA prices the ICG's own
# clock pin and what follows the gate at its (global) data activity. gen/energy.py's
# `icg_idle` is measured so.

source $design_loader
set_disable_timing [get_cells -hierarchical -quiet -filter "ref_name =~ $clock_gates" *]
