"""hakit.lab — a real multi-node Pacemaker/Corosync cluster on one machine.

Each node is a network + mount + UTS namespace with its own /run, Pacemaker and
Corosync state; knet runs over veth pairs on a bridge; a fence agent powers nodes
off by killing their processes. See docs/lab.md.
"""
