// The checkers' case filters: BENCH_CASES="a,b" keeps the benchmark cases whose labels contain a or b (all when
// unset); CHECK_CASES does the same for the forward checker's shape fuzz.
#pragma once

#include <algorithm>
#include <cstdlib>
#include <string>

inline bool case_chosen(const std::string& label, const char* variable) {
    const char* only = std::getenv(variable);
    if (only == nullptr || *only == 0) return true;
    const std::string list = only;
    for (size_t at = 0; at <= list.size();) {
        const size_t comma = std::min(list.find(',', at), list.size());
        if (comma > at && label.find(list.substr(at, comma - at)) != std::string::npos) return true;
        at = comma + 1;
    }
    return false;
}

inline bool bench_case_chosen(const std::string& label) { return case_chosen(label, "BENCH_CASES"); }
