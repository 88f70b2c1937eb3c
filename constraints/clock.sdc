# sparsegen's timing constraints (SDC commands, sourced by constraints/sta.tcl after
# `set_cmd_units -time ns`, so every number here is in nanoseconds whatever the liberty's unit).
#
# Variables set by gen/synth.py before this file runs:
#   clock_ns    the clock period: `sparsegen synth --clock-ns`, else the tech's `clock_ns` in
#               constraints/techs.toml
#   clock_port  the clock input: `clk`, Amaranth's `sync` domain (every sparsegen design has one)
#
# One clock, ideal: no source or network latency, no skew, no jitter or uncertainty, no clock
# tree. A design without the clock port (a purely combinational test circuit) gets a virtual
# clock of the same period, so its port-to-port paths are still timed.
if {[llength [get_ports -quiet $clock_port]] > 0} {
    create_clock -name clk -period $clock_ns [get_ports $clock_port]
    set data_inputs [delete_from_list [all_inputs] [get_ports $clock_port]]
} else {
    create_clock -name clk -period $clock_ns
    set data_inputs [all_inputs]
}
# The ports are timed as register boundaries of a same-clock neighbour with nothing in between:
# inputs arrive at the clock edge and outputs are due at the next one (delays 0, no external
# load, ideal input drivers). A port-to-register or register-to-port path is then only this
# design's share; the neighbour's logic before or after the port is not counted.
set_input_delay 0 -clock clk $data_inputs
set_output_delay 0 -clock clk [all_outputs]
# No wires: every net's load is the sum of its pins' capacitances. The liberty's own statistical
# wire-load model (sky130hd declares `Small` as the default) would otherwise add a fanout-based
# wire capacitance and resistance; without placement that is a guess, and a wire-free figure is
# the same kind of number for every tech and can be checked by hand against the liberty tables.
# gen/synth.py hands OpenSTA each liberty without its `default_wire_load` line (`_wire_free`),
# so no net gets a model; nothing to set here.
