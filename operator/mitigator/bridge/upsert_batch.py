"""Several alert groups of ONE target into their Incidents in as few writes as they allow
(the writer side of `commits`' group commit): read what the batch needs once, fold the groups
into one patch (`batches.fold`), write it, and answer each group carried by that write.
Groups the write could not carry go to the next round; a group the reads do not settle goes
through the single-group path (`Upserter.try_upsert`), which also tells which group's alerts
the API server refused.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from mitigator import k8s
from mitigator.bridge.batches import Fold, fold
from mitigator.bridge.failures import ApiFailure, TooLarge
from mitigator.bridge.grouping import TargetAlerts
from mitigator.bridge.identity import LABEL_GROUP
from mitigator.bridge.memory import OWN
from mitigator.bridge.notes import clip
from mitigator.bridge.upsert import MAX_ATTEMPTS, Answered, Upserter

log = logging.getLogger("mitigator.bridge")

# Alert groups of one target written together at most: one label selector names them all.
MAX_BATCH = 64


def upsert_batch(
    upserter: Upserter, targets: Sequence[TargetAlerts], answer: Callable[[int, Answered], None]
) -> None:
    """Alert groups of one target that arrived together: `answer(index, result)` for each,
    once the write that carries its alerts succeeded, or with the `ApiFailure` that ended it
    (a failed write fails every group it carried, and Alertmanager retries them)."""
    if not targets:
        return
    with upserter.lock_for(targets[0].key):
        pending = list(range(len(targets)))
        while pending:
            chunk, pending = pending[:MAX_BATCH], pending[MAX_BATCH:]
            try:
                done, rest = _round(upserter, [targets[index] for index in chunk])
            except ApiFailure as failure:
                for index in (*chunk, *pending):
                    answer(index, failure)
                return
            for local, result in done.items():
                answer(chunk[local], result)
            pending = [*(chunk[local] for local in rest), *pending]


def _round(upserter: Upserter, batch: list[TargetAlerts]) -> tuple[dict[int, Answered], list[int]]:
    """One write for as many of `batch` as it can carry: their answers (by index in `batch`),
    and the indexes left for the next round. Always answers one at least."""
    if len(batch) == 1:
        return {0: upserter.try_upsert(batch[0])}, []
    recent = upserter.recent
    for _ in range(MAX_ATTEMPTS):
        folded, remembered = _fold(upserter, batch)
        if not folded.carried:  # nothing settled by what was read: the first alone
            return {0: upserter.try_upsert(batch[0])}, list(range(1, len(batch)))
        carried = [(batch[index], index, decision) for index, decision in folded.carried]
        written = None
        try:
            if folded.patch is not None:
                assert folded.name is not None
                written = upserter.patch(
                    batch[0].namespace, folded.name, folded.patch, base=folded.base
                )
            elif remembered:  # only keeps, decided on memory: confirm on a fresh read
                recent.forget_object(batch[0].key)
                continue
        except (k8s.Conflict, k8s.NotFound):
            recent.forget_object(batch[0].key)
            continue
        except (k8s.NamespaceNotFound, k8s.Invalid, TooLarge):
            # Which group's alerts the API server refused is told one group at a time.
            answered = {index: upserter.try_upsert(target) for target, index, _ in carried}
            return answered, list(folded.rest)
        answers: dict[int, Answered] = {
            index: upserter.record(target, decision, written=written, recorded=folded.recorded)
            for target, index, decision in carried
        }
        if len(carried) > 1:
            log.info(
                "bridge: %d alert groups of Deployment %s/%s written to Incident %s at once",
                len(carried),
                batch[0].namespace,
                batch[0].deployment,
                folded.name,
            )
        return answers, list(folded.rest)
    raise ApiFailure(
        f"the Incidents of Deployment {batch[0].namespace}/{clip(batch[0].deployment)} "
        f"kept changing; gave up after {MAX_ATTEMPTS} attempts"
    )


def _fold(upserter: Upserter, batch: list[TargetAlerts]) -> tuple[Fold, bool]:
    """`batches.fold` on what the batch needs read: the groups' own Incidents (one list by
    their labels), and the Incidents their alerts went to lately, as the bridge wrote them or
    else read; the whole namespace when the bridge wrote none lately. Also whether a
    remembered Incident was used."""
    namespace, key, now = batch[0].namespace, batch[0].key, upserter.clock()
    recent, kube = upserter.recent, upserter.kube
    names = {recent.where(target.group_hash) for target in batch}
    names.add(recent.last_for(key))
    names -= {None, OWN}
    if not names:
        everything = upserter.api_call(kube.list_incidents, namespace)
        return fold(batch, (), everything, now, complete=True), False
    labels = ",".join(sorted({target.group_label for target in batch}))
    own = upserter.api_call(upserter.group_incidents, namespace, f"{LABEL_GROUP} in ({labels})")
    hosts, remembered = [], False
    for name in sorted(str(name) for name in names):
        host = recent.written(key, name)
        remembered = remembered or host is not None
        try:
            hosts.append(host or upserter.api_call(kube.read_incident, namespace, name))
        except k8s.NotFound:
            continue
    return fold(batch, own, hosts, now, complete=False), remembered
