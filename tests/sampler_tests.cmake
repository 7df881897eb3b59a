# Sampler tests, included from tests/CMakeLists.txt.
# test_sampler: greedy/top-k/top-p/temperature/repetition penalty against softmax frequencies
# and a full-sort reference, seeding, invalid configs; StopMatcher on split/partial/multiple
# stop strings.
cc_add_test(test_sampler SOURCES unit/test_sampler.cpp LABELS unit)
