/*
 * platform.h - the NB_HAVE_* switches of the core (see nb_config.h.in).
 * CMake builds (NB_CONFIGURED) take them from the nb_config.h configure
 * generated; a build without configure (the rockspec's builtin build)
 * takes the Linux calls on Linux and the POSIX.1-2008 fallbacks anywhere
 * else. Includes no system header: a source file includes this first and
 * decides on _GNU_SOURCE from it.
 */
#ifndef NB_PLATFORM_H
#define NB_PLATFORM_H

#ifdef NB_CONFIGURED
#include "nb_config.h"
#elif defined(__linux__) && !defined(NB_PORTABLE_BUILD)
#define NB_PORTABLE 0
#define NB_HAVE_MREMAP 1
#define NB_HAVE_MADV_HUGEPAGE 1
#define NB_HAVE_SYNC_FILE_RANGE 1
#define NB_HAVE_POSIX_FADVISE 1
#define NB_HAVE_PIPE2 1
#define NB_HAVE_EVENTFD 1
#define NB_HAVE_ACCEPT4 1
#define NB_HAVE_CLOCK_MONOTONIC 1
#define NB_HAVE_PTHREAD_CONDATTR_SETCLOCK 1
#else
#define NB_PORTABLE 1
#define NB_HAVE_MREMAP 0
#define NB_HAVE_MADV_HUGEPAGE 0
#define NB_HAVE_SYNC_FILE_RANGE 0
#define NB_HAVE_POSIX_FADVISE 0
#define NB_HAVE_PIPE2 0
#define NB_HAVE_EVENTFD 0
#define NB_HAVE_ACCEPT4 0
#define NB_HAVE_CLOCK_MONOTONIC 1
#if defined(__APPLE__)
#define NB_HAVE_PTHREAD_CONDATTR_SETCLOCK 0
#else
#define NB_HAVE_PTHREAD_CONDATTR_SETCLOCK 1
#endif
#endif

#endif
