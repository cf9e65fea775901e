// The checkers' benchmark case filter: BENCH_CASES="a,b" keeps the cases whose labels contain a or b (all when unset).
#pragma once

#include <algorithm>
#include <cstdlib>
#include <string>

inline bool bench_case_chosen(const std::string& label) {
    const char* only = std::getenv("BENCH_CASES");
    if (only == nullptr || *only == 0) return true;
    const std::string list = only;
    for (size_t at = 0; at <= list.size();) {
        const size_t comma = std::min(list.find(',', at), list.size());
        if (comma > at && label.find(list.substr(at, comma - at)) != std::string::npos) return true;
        at = comma + 1;
    }
    return false;
}
