"""VRChat's I/O: OSC both ways, its input controller, avatar parameters, OSCQuery, smoothing."""
