"""hakit.lab.drill — failover drills: faults injected into the lab, measured and reported."""
