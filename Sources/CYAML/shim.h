#ifndef MCPD_CYAML_SHIM_H
#define MCPD_CYAML_SHIM_H
#include <yaml.h>
#endif
