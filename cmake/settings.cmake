# Compile settings every target links, kept in INTERFACE targets (as ccache
# does) so a target cannot forget them.
add_library(dpr_settings INTERFACE)
target_compile_options(dpr_settings INTERFACE -Wall -Wextra -Wpedantic
  -Wno-unused-parameter
  # GCC 12 flags designated initializers that leave members at their
  # defaults, which is exactly what they are for here.
  -Wno-missing-field-initializers)
if(DPR_WERROR)
  target_compile_options(dpr_settings INTERFACE -Werror)
endif()
target_include_directories(dpr_settings INTERFACE ${PROJECT_SOURCE_DIR})
target_compile_definitions(dpr_settings INTERFACE
  DPR_VERSION="${PROJECT_VERSION}"
  SPDLOG_ACTIVE_LEVEL=SPDLOG_LEVEL_TRACE)

if(DPR_FUZZ)
  # Coverage for libFuzzer plus the sanitizers, on everything the targets link.
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
    -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()

if(DPR_SANITIZE)
  set(_san -fsanitize=address,undefined -fno-omit-frame-pointer
    -fno-sanitize-recover=undefined)
  add_compile_options(${_san})
  add_link_options(${_san})
endif()

# Generated protobuf code is not ours to fix: it gets no -Werror.
add_library(dpr_generated_settings INTERFACE)
target_compile_options(dpr_generated_settings INTERFACE -w)
