"""Tools around training: plots of runs, model conversion, dataset preparation and checks."""
