"""``fit_from_step``: ``model.fit`` that can start in the middle of an epoch.

Keras starts training at an epoch boundary. A run resumed from a step checkpoint first
trains the rest of its epoch (a fit of the missing batches), then the later epochs. The
callbacks see one run: ``on_train_begin`` once before the first fit and ``on_train_end`` once
after the last.
"""
import keras


class _OneRun(keras.callbacks.CallbackList):
    """A CallbackList whose train begin and end are signalled once over several fits."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.begun = False

    def on_train_begin(self, logs=None):
        if not self.begun:
            self.begun = True
            super().on_train_begin(logs)

    def on_train_end(self, logs=None):
        pass

    def end(self, logs=None):
        super().on_train_end(logs)


def fit_from_step(model, stream, start_step, steps_per_epoch, epochs, callbacks, verbose=1):
    """Train from global step ``start_step`` to the end of epoch ``epochs``; ``stream(step)``
    is the training dataset from that step on."""
    epoch, batch = divmod(start_step, steps_per_epoch)
    runs = []
    if batch:
        runs.append((epoch, steps_per_epoch - batch, start_step))
        epoch += 1
    if epoch < epochs:
        runs.append((epoch, steps_per_epoch, epoch * steps_per_epoch))
    listed = _OneRun(callbacks, add_history=True, add_progbar=verbose != 0, verbose=verbose,
                     epochs=epochs, steps=steps_per_epoch, model=model)
    for i, (first, steps, step) in enumerate(runs):
        last = first + 1 if batch and i == 0 else epochs
        model.fit(stream(step), epochs=last, initial_epoch=first, steps_per_epoch=steps,
                  callbacks=listed, shuffle=False, verbose=verbose)
        if model.stop_training:
            break
    if runs:
        listed.end()
