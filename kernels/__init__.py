"""CUDA C sources of cbagpu's GPU kernels (installed as package data ``cbagpu.kernels``)."""
