/*
 * refslot.c — the atomically swapped, reference-counted pointer that holds
 * the served model.
 *
 * Readers (requests) take a reference to the current object and drop it
 * when they finish; a writer (reload) swaps in a new object and drops the
 * slot's own reference to the old one, which is destroyed when its last
 * reader lets go. Readers never wait for a writer and never take a lock.
 *
 * The one hazard of "load the pointer, then increment its count" is a
 * reader that has loaded the old pointer but not yet incremented when the
 * writer drops the last reference: it would increment freed memory. The
 * `acquiring` counter closes that window. A reader increments it before
 * loading the pointer and decrements it after counting its reference. The
 * writer, after the exchange, waits until `acquiring` reads zero before
 * dropping the old reference. Any reader that loaded the old pointer
 * entered before the exchange (all operations are sequentially
 * consistent), so a zero means it has already counted itself: the old
 * object cannot reach zero under it. Readers arriving after the exchange
 * see the new pointer. The window is a handful of instructions, so the
 * writer's wait is a few spins even under full load.
 */
#include "srv.h"

#include <sched.h>
#include <stddef.h>

void srv_slot_init(srv_slot *s, srv_ref *r) {
  atomic_init(&s->cur, r);
  atomic_init(&s->acquiring, 0);
}

srv_ref *srv_slot_acquire(srv_slot *s) {
  atomic_fetch_add(&s->acquiring, 1);
  srv_ref *r = atomic_load(&s->cur);
  if (r) atomic_fetch_add(&r->refs, 1);
  atomic_fetch_sub(&s->acquiring, 1);
  return r;
}

void srv_ref_release(srv_ref *r) {
  if (r && atomic_fetch_sub(&r->refs, 1) == 1) r->destroy(r);
}

static void wait_for_acquirers(srv_slot *s) {
  for (unsigned spins = 0; atomic_load(&s->acquiring) != 0; spins++)
    if (spins > 64) sched_yield();
}

void srv_slot_swap(srv_slot *s, srv_ref *next) {
  srv_ref *old = atomic_exchange(&s->cur, next);
  wait_for_acquirers(s);
  srv_ref_release(old);
}

void srv_slot_clear(srv_slot *s) { srv_slot_swap(s, NULL); }
