# coro_profile_instrument(<target>)
#
# Build <target>'s own sources with -finstrument-functions, so that the
# profiler's instrumenting mode (CORO_PROF_INSTRUMENT) times each of its
# functions, and link the profiler, which provides the
# __cyg_profile_func_enter/exit hooks.  Inline functions of the system
# headers are left out.  Also: frame pointers (for the sampling mode) and
# exported symbols (-rdynamic), so that reports name the functions.
# Mark a function __attribute__((no_instrument_function)) to leave it out.
function(coro_profile_instrument tgt)
  target_compile_options(${tgt} PRIVATE -finstrument-functions
    -finstrument-functions-exclude-file-list=/usr/include/,/usr/lib/
    -fno-omit-frame-pointer)
  set_target_properties(${tgt} PROPERTIES ENABLE_EXPORTS ON)
  target_link_libraries(${tgt} PRIVATE ${CORO_PROFILER_TARGET})
endfunction()
