/* Debian's libhttp-parser (libhttp-parser-dev): the HTTP/1.1 request parser of mcpd's HTTP
 * front. No pkg-config file ships with it, so the module map links it by name. */
#include <http_parser.h>
