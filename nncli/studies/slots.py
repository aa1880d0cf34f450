"""What each trial of a sweep is given, as a function of trial order and results only, never of timing.

A trial's slot is its place in the uninterrupted sweep: 0, 1, 2, … With a window of 2 x workers, slot n is proposed
once slots 0..n - window are told, and from exactly those: its params come from a sampler seeded by
(sampler_seed, n) that sees only their results, in slot order, and it is pruned against the curves of the complete
ones among them. A trial run again after an interruption or a lost worker keeps its slot, its params and the list
of trials it is pruned against (the user attrs `slot` and `pruned_against` in study.db), so however a sweep was
interrupted, resumed or retried, every slot trains the same config with the same pruning as in one go.

Trials of a sweep begun by an earlier nncli have no `slot`: they are numbered in trial order once, the first time
this version opens the study, and that numbering is kept in the study's user attr `legacy_slots`.
"""

import itertools

import numpy as np

SLOT, AGAINST, LEGACY = "slot", "pruned_against", "legacy_slots"


def number_legacy_trials(study, sweep):
    """Record, once, a slot for every trial made before slots existed (in trial order; trials interrupted, or killed
    while Optuna proposed their params, hold none)."""
    if LEGACY in study.user_attrs:
        return
    legacy, keys = {}, {p.key for p in sweep.space}
    for trial in study.get_trials(deepcopy=False):
        interrupted = trial.user_attrs.get("interrupted")
        half_asked = trial.state.name == "RUNNING" and not keys <= trial.params.keys()
        if SLOT not in trial.user_attrs and not interrupted and not half_asked:
            legacy[str(trial.number)] = len(legacy)
    study.set_user_attr(LEGACY, legacy)


def slot_of(study, trial):
    """The slot `trial` holds, or None (an interrupted trial's slot passed to its re-run)."""
    if trial.user_attrs.get("interrupted"):
        return None
    slot = trial.user_attrs.get(SLOT)
    return slot if slot is not None else study.user_attrs.get(LEGACY, {}).get(str(trial.number))


def told(study):
    """{slot: frozen trial} of the trials told complete, pruned or failed."""
    out = {}
    for trial in study.get_trials(deepcopy=False):
        slot = slot_of(study, trial)
        if slot is not None and trial.state.is_finished():
            out[slot] = trial
    return out


def next_slot(study):
    """The first slot no trial holds yet."""
    held = [slot_of(study, t) for t in study.get_trials(deepcopy=False)]
    return max((s for s in held if s is not None), default=-1) + 1


def grid_point(sweep, slot):
    """The grid's `slot`-th combination, in the order Optuna's GridSampler gives its trial numbers (keys sorted,
    the grid shuffled with sampler_seed), so grid sweeps begun by an earlier nncli continue as they began."""
    encoded = {p.key: p.encoded for p in sweep.space}
    keys = sorted(encoded)
    grid = list(itertools.product(*(encoded[k] for k in keys)))
    np.random.RandomState(sweep.sampler_seed or 0).shuffle(grid)
    return dict(zip(keys, grid[slot]))


def sampler(sweep, slot):
    """The Optuna sampler proposing `slot`, seeded from (sampler_seed, slot) so that a resumed sweep continues the
    sequence instead of replaying it."""
    import optuna

    seed = int(np.random.SeedSequence([sweep.sampler_seed, slot]).generate_state(1)[0])
    if sweep.method == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(2, min(10, sweep.trials // 3)))


class Proposals:
    """Params and pruning curves for new slots, from the told trials of slots 0..n - window only.

    TPE sees them in an in-memory study, filled in slot order as slots become visible; random sampling needs no
    history and grid none either (grid_point).
    """

    def __init__(self, study, sweep, window):
        import optuna

        self.study, self.sweep, self.window = study, sweep, window
        self.history = optuna.create_study(direction="maximize" if sweep.maximize else "minimize")
        self.visible = 0  # slots 0..visible - 1 are in self.history

    def propose(self, slot):
        """(encoded params, trial numbers of the complete trials slot `slot` is pruned against)."""
        from optuna.trial import TrialState

        done = told(self.study)
        last = slot - self.window  # the last slot this one may see
        against = [done[s].number for s in range(last + 1) if s in done and done[s].state.name == "COMPLETE"]
        if self.sweep.method == "grid":
            return grid_point(self.sweep, slot), against
        if self.sweep.method == "tpe":
            self._show(done, last)
        self.history.sampler = sampler(self.sweep, slot)
        trial = self.history.ask({p.key: p.distribution() for p in self.sweep.space})
        self.history.tell(trial, state=TrialState.FAIL)  # a proposal, not a result: TPE learns from told results only
        return dict(trial.params), against

    def _show(self, done, last):
        import optuna

        for slot in range(self.visible, last + 1):
            if slot in done:
                t = done[slot]
                self.history.add_trial(
                    optuna.trial.create_trial(
                        state=t.state,
                        value=t.value if t.state.name == "COMPLETE" else None,
                        params=t.params,
                        distributions=t.distributions,
                        intermediate_values=t.intermediate_values,
                    )
                )
        self.visible = max(self.visible, last + 1)


def pruning_curves(study, numbers):
    """The per-seed curves of the trials numbered `numbers`, in that order: what a trial is pruned against."""
    by_number = {t.number: t for t in study.get_trials(deepcopy=False)}
    return [by_number[n].user_attrs.get("curves") for n in numbers if n in by_number]
