import numpy as np

from imagenet_trainer.data.sampler import EpochBatchSampler, ShardBatchSampler

LABELS = np.repeat(np.arange(4), [10, 20, 5, 15])


def _flat(sampler):
    return [i for batch in sampler for i, _ in batch]


def test_order_depends_only_on_seed_and_epoch():
    a, b = EpochBatchSampler(LABELS, 8, seed=1), EpochBatchSampler(LABELS, 8, seed=1)
    a.set_epoch(3)
    b.set_epoch(3)
    assert list(a) == list(b)
    b.set_epoch(4)
    assert _flat(a) != _flat(b)
    assert len(set(_flat(a))) == len(_flat(a)) == 48  # drop_last: 6 full batches, no repeats


def test_ranks_split_the_global_batch():
    single = EpochBatchSampler(LABELS, 8, seed=2)
    ranks = [EpochBatchSampler(LABELS, 4, seed=2, rank=r, world_size=2) for r in range(2)]
    for s in (single, *ranks):
        s.set_epoch(1)
    for whole, r0, r1 in zip(single, *ranks):
        assert whole == r0 + r1


def test_epoch_size_longer_than_data():
    s = EpochBatchSampler(LABELS, 16, seed=0, epoch_size=10)
    assert len(s) == 10 and len(list(s)) == 10
    counts = np.bincount(_flat(s), minlength=len(LABELS))
    assert counts.min() >= 3  # every image appears in each full pass


def test_balanced_sampling_draws_classes_uniformly():
    s = EpochBatchSampler(LABELS, 100, seed=0, epoch_size=40, sampling="balanced")
    per_class = np.bincount(LABELS[_flat(s)], minlength=4) / 4000
    assert np.allclose(per_class, 0.25, atol=0.03)


def test_sample_seeds_differ_per_position():
    seeds = [sd for batch in EpochBatchSampler(LABELS, 8) for _, sd in batch]
    assert len(set(seeds)) == len(seeds)


def test_shards_cover_every_item_once():
    for n, world in ((10, 3), (7, 4), (3, 4), (100, 1)):
        seen = [i for r in range(world) for b in ShardBatchSampler(n, 4, r, world) for i in b]
        assert sorted(seen) == list(range(n))


def test_a_continuous_sampler_goes_on_into_the_next_epochs_with_their_crop_sizes():
    import itertools

    one = EpochBatchSampler(LABELS, 8, seed=3)
    one.crop_schedule = lambda e: 16 + 8 * e
    cont = EpochBatchSampler(LABELS, 8, seed=3)
    cont.crop_schedule, cont.continuous = one.crop_schedule, True
    cont.set_epoch(2)
    expected = []
    for e in (2, 3, 4):
        one.set_epoch(e)
        expected += list(one)
    assert list(itertools.islice(iter(cont), 18)) == expected  # 6 batches an epoch
    assert expected[0][0][2] == 32 and expected[-1][0][2] == 48
    assert cont.crop_size == 32  # this epoch's, from the schedule


def test_a_continuous_sampler_stops_after_its_last_epoch():
    one = EpochBatchSampler(LABELS, 8, seed=3)
    cont = EpochBatchSampler(LABELS, 8, seed=3)
    cont.continuous, cont.last_epoch = True, 3
    cont.set_epoch(2)
    expected = []
    for e in (2, 3):
        one.set_epoch(e)
        expected += list(one)
    assert list(cont) == expected  # epochs 2 and 3, then the end


def test_repeated_augmentation_deals_each_image_to_several_ranks_with_other_seeds():
    labels = np.zeros(48, dtype=np.int64)
    ranks = [EpochBatchSampler(labels, 6, seed=1, rank=r, world_size=4, repeats=3) for r in range(4)]
    single = EpochBatchSampler(labels, 24, seed=1, repeats=3)
    assert len(ranks[0]) == len(single) == 2  # the epoch keeps its length
    for b, (one, *parts) in enumerate(zip(single.batches(), *(s.batches() for s in ranks))):
        per_rank = [set(p[0].tolist()) for p in parts]
        union = np.concatenate([p[0] for p in parts])
        assert sorted(union.tolist()) == sorted(one[0].tolist())  # the ranks share the global batch
        counts = np.bincount(union)
        assert set(counts[counts > 0].tolist()) == {3}  # each image 3 times in the global batch ...
        for image in set(union.tolist()):
            assert sum(image in s for s in per_rank) == 3  # ... on 3 different ranks
        seeds = np.concatenate([p[1] for p in parts])
        assert len(set(seeds.tolist())) == len(seeds)  # each copy its own crop
    first = EpochBatchSampler(labels, 6, seed=1, repeats=3)
    assert first._global_order(0).tolist() != first._global_order(1).tolist()  # each epoch its own images
