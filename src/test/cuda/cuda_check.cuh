// The checkers' runtime-API error guard: a failed call ends the process with its place and CUDA's reason.
#pragma once

#include <cstdio>
#include <cstdlib>

#define CUDA_CHECK(x)                                                                                  \
    do {                                                                                               \
        cudaError_t err_ = (x);                                                                        \
        if (err_ != cudaSuccess) {                                                                     \
            std::fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(err_)); \
            std::exit(2);                                                                              \
        }                                                                                              \
    } while (0)
