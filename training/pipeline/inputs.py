"""Turn an app's examples into the batched, cached, prefetched input fit expects."""

import functools

import tensorflow as tf

from training.contract import check_examples


def counted(ds):
    """(ds, its number of examples): when tf.data does not know it (after filter or window),
    counted once, and tf.data told."""
    examples = int(ds.cardinality())
    if examples < 0:
        examples = int(ds.reduce(0, lambda n, *_: n + 1))
        ds = ds.apply(tf.data.experimental.assert_cardinality(examples))
    return ds, examples


def split_examples(app, split="train"):
    """How many examples the app's `split` holds (0 if none)."""
    ds = app.build_data(split)
    return 0 if ds is None else counted(ds)[1]


def global_batch_size(config, strategy):
    """Per-replica `batch_size` x replicas in sync."""
    return config.batch_size * strategy.num_replicas_in_sync


def make_dataset(app, split, config, strategy, training=False, epochs=None, examples=None,
                 skip_batches=0, balance=None):
    """(batched dataset, number of examples) of the app's `split`, or (None, 0).

    cache (decoded examples, in memory, with data.cache unless the app says they would not
    fit) -> shuffle (train only, seeded) ->
    batch -> prefetch. Keras distributes the global batches across replicas;
    data-level auto-sharding splits them between workers.

    epochs=(first, end): one stream of epochs first..end-1 whose shuffle seed
    is derived from the epoch number, so a run resumed at epoch k sees the
    same batches as an uninterrupted one (fit it with steps_per_epoch).
    examples: the split's size when the caller counted it already (split_examples).
    skip_batches: batches of the first epoch already trained on (a mid-epoch backup).
    balance: the class_balance.Balance of a training split: class weights added to each
    example (after the cache), each pass drawn class-balanced.
    """
    ds = app.build_data(split)
    if ds is None:
        return None, 0
    check_examples(app, split, ds)
    if examples is None:
        ds, examples = counted(ds)
    else:  # counted already (split_examples): tell tf.data, do not count again
        ds = ds.apply(tf.data.experimental.assert_cardinality(examples))
    if config.data.cache and app.fits_in_memory(split):
        ds = ds.cache()
    batch = global_batch_size(config, strategy)
    if training and balance is not None:
        ds = balance.weighted(ds)
    examples_ds = ds

    def shuffled(seed, reshuffle):
        if training and balance is not None and balance.sampling:
            return balance.resampled(examples_ds, examples, config.data.shuffle_buffer, seed)
        return examples_ds.shuffle(config.data.shuffle_buffer, seed=seed,
                                   reshuffle_each_iteration=reshuffle)

    if training and epochs is not None:
        # Python-int seeds, one shuffled pass per epoch, concatenated: a tensor seed
        # (flat_map over the epoch numbers) fails when the global seed is 0, as
        # tf.random's get_seed then compares the tensor with 0 in Python. Each pass
        # keeps its order for every iterator Keras makes (reshuffle off).
        passes = [shuffled(config.seed * 100003 + epoch, False).batch(batch)
                  for epoch in range(*epochs)] or [ds.take(0).batch(batch)]
        ds = functools.reduce(tf.data.Dataset.concatenate, passes).skip(skip_batches)
    else:
        if training:
            ds = shuffled(config.seed, True)
        ds = ds.batch(batch)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    options.deterministic = True
    return ds.with_options(options).prefetch(tf.data.AUTOTUNE), examples


def batches_per_epoch(examples, config, strategy):
    """Global batches in one pass over `examples` (the last one may be partial)."""
    return -(-examples // global_batch_size(config, strategy))
