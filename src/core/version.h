/* version.h - the single source of nanobanana's version. The rockspec and
 * lua/nanobanana/init.lua are checked against it by the test suite. */
#ifndef NB_VERSION_H
#define NB_VERSION_H
#define NB_VERSION "0.1.0"
#endif
