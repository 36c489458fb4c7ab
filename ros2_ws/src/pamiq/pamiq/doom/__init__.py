"""The built-in Doom world: the game, its map, its engine's process, a step as the live world
takes it, the training worlds."""
