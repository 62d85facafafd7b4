"""Studies over many realizations (paper Sections 3.3-3.4, 4): validation across resolutions,
virtual materials testing, regressions, block-wise generation; tasks run on Dask."""
