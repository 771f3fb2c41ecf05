# coro_profile_instrument(<target>)
#
# Build <target>'s own sources with -finstrument-functions, so that the
# profiler's instrumenting mode (CORO_PROF_INSTRUMENT) times each of its
# functions, and link the profiler, which provides the
# __cyg_profile_func_enter/exit hooks.  Inline functions of the system
# headers are left out.  Also: frame pointers (for the sampling mode) and
# exported symbols (-rdynamic), so that reports name the functions.
# Mark a function __attribute__((no_instrument_function)) to leave it out.
# GCC leaves the system headers out by path; Clang has no such option, and
# instruments after inlining instead, which leaves out what was inlined.
include(CheckCCompilerFlag)
check_c_compiler_flag(-finstrument-functions-exclude-file-list=/usr/include/
  CORO_CC_HAS_INSTRUMENT_EXCLUDE)
check_c_compiler_flag(-finstrument-functions-after-inlining
  CORO_CC_HAS_INSTRUMENT_AFTER_INLINING)

function(coro_profile_instrument tgt)
  if(CORO_CC_HAS_INSTRUMENT_EXCLUDE)
    set(instrument -finstrument-functions
      -finstrument-functions-exclude-file-list=/usr/include/,/usr/lib/)
  elseif(CORO_CC_HAS_INSTRUMENT_AFTER_INLINING)
    set(instrument -finstrument-functions-after-inlining)
  else()
    set(instrument -finstrument-functions)
  endif()
  target_compile_options(${tgt} PRIVATE ${instrument} -fno-omit-frame-pointer)
  set_target_properties(${tgt} PROPERTIES ENABLE_EXPORTS ON)
  target_link_libraries(${tgt} PRIVATE ${CORO_PROFILER_TARGET})
endfunction()
