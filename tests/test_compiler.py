"""The instruction set, the compiler and the functional model (`pyref.machine`): compiled
programs compute exactly what the integer model computes, and bad input is refused."""

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyref import compiler, isa, machine
from pyref.config import ConfigError, get_config, get_hw_config
from pyref.isa import Descriptor, Op, ProgramError
from pyref.workload import parameters_of, workload
from scripts.designs import TOP_MEMORY_WORDS as TINY_MEMORY


@pytest.fixture(scope="module")
def tiny():
    return workload("tiny", "ecp5-85f", 4, seed=0, memory_words=TINY_MEMORY)


@pytest.mark.parametrize("hw", ["ecp5-85f", "edge-moe"])
def test_tiny_programs_compute_the_integer_models_logits(hw):
    work = workload("tiny", hw, 4, seed=3, memory_words=TINY_MEMORY)
    for task in (0, 1):
        expected = work.expected(task)
        for codes, want in zip(work.codes, expected, strict=True):
            got, _ = machine.infer(work.image, codes, task)
            assert np.array_equal(got, want)


@pytest.mark.parametrize("config", ["tiny", "m3vit-tiny"])
def test_fewer_images_are_the_first_of_more(config):
    # The data set's test images (tiny) and random ones (m3vit-tiny) alike.
    few = workload(config, "edge-moe", 1, seed=5, memory_words=1 << 20, depth=1)
    more = workload(config, "edge-moe", 3, seed=5, memory_words=1 << 20, depth=1)
    assert np.array_equal(few.codes, more.codes[:1])
    assert len(np.unique(more.codes, axis=0)) == 3


def test_m3vit_blocks_compute_the_integer_models_logits():
    # A dense block and a MoE block of m3vit-tiny, random weights, the edge-moe set.
    work = workload("m3vit-tiny", "edge-moe", 1, seed=0, memory_words=1 << 20, depth=2)
    got, run = machine.infer(work.image, work.codes[0], 1)
    assert np.array_equal(got, work.expected(1)[0])
    # Only the used experts' weights are read: each used expert's fc1 and fc2 once.
    moe = next(j.routing for j in run.jobs if j.unit == "moe")
    experts = [j for j in run.jobs if j.unit == "linear" and j.fields["gelu"]][1:]
    assert len(experts) == len(moe.used) < get_config("m3vit-tiny").experts + 1


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(list(Op)), st.integers(0, 18), st.booleans(), st.integers(0, 3),
       st.integers(0, (1 << 32) - 1), st.integers(1, (1 << 16) - 1),
       st.integers(-(1 << 31), (1 << 31) - 1))
def test_instructions_survive_encoding(op, target, per_expert, level, base, count, stride):
    body = isa.OP_BODY[op]
    fields = {}
    if body == "descriptor":
        fields = Descriptor(base, count, ((count, stride), (2, 1), (1, 0)), lanes=3).fields()
    elif body == "command":
        fields = {"tokens": count, "chunks": 3, "out_chunks": 2, "gelu": 1, "value": base}
    elif body == "wait":
        fields = {"ports": base}
    elif body == "experts":
        fields = {"body": 9, "entries": count, "expert_stride": base}
    ins = isa.Instruction(op, target, per_expert, level, fields)
    back = isa.Instruction.decode(ins.encode())
    assert (back.op, back.target, back.per_expert, back.token_level) == (op, target,
                                                                        per_expert, level)
    if body == "descriptor":
        assert back.descriptor() == ins.descriptor()
    elif body:
        assert all(back.fields[k] == v for k, v in fields.items())


def test_descriptor_loops_wrap_until_the_words_are_done():
    d = Descriptor(100, 7, ((2, 10), (2, 1), (1, 0)))
    assert list(d.addresses()) == [100, 110, 101, 111, 100, 110, 101]
    # An EXPERTS body: the level's count becomes the tokens, the words are per token.
    assert list(d.addresses(token_level=2, tokens=3, offset=5)) == \
        [105, 115, 106, 116, 107, 117, 105, 115, 106, 116, 107, 117, 105, 115, 106, 116, 107,
         117, 105, 115, 106]


def memory_with(image, program):
    """The image's memory with ``program`` as task 0's."""
    memory = machine.memory_of(image)
    words = isa.instruction_words(image.hw, program)
    memory[image.entries[0]:image.entries[0] + len(words)] = words
    return memory


def without_first(image, op: Op):
    """A memory holding task 0's program without its first ``op`` instruction."""
    program = image.programs[0]
    first = next(i for i, ins in enumerate(program) if ins.op is op)
    return memory_with(image, program[:first] + program[first + 1:])


def test_a_missing_wait_is_a_race_the_machine_refuses(tiny):
    with pytest.raises(ProgramError, match="races .*WAIT on them first"):
        machine.infer(tiny.image, tiny.codes[0], 0, without_first(tiny.image, Op.WAIT))


def test_a_wait_that_never_ends_is_named(tiny):
    # Without the patch embedding's command its output never comes.
    with pytest.raises(ProgramError, match="WAIT on linear.o never ends"):
        machine.infer(tiny.image, tiny.codes[0], 0, without_first(tiny.image, Op.CMD))


def test_an_image_too_big_for_the_memory_says_how_big_it_is(tiny):
    with pytest.raises(ProgramError, match=r"needs \d+ words .* memory_words >= \d+"):
        compiler.compile_model(tiny.image.config, tiny.image.hw, tiny.model.p, 4096)


def test_unknown_tasks_and_wrong_inputs_are_refused(tiny):
    with pytest.raises(ConfigError, match="unknown task 2"):
        machine.infer(tiny.image, tiny.codes[0], 2)
    with pytest.raises(ConfigError, match="does not fit config 'tiny'"):
        machine.infer(tiny.image, tiny.codes[0][:, :10], 0)


def test_a_checkpoint_of_another_shape_is_refused(tiny):
    params = dict(tiny.model.p)
    params["blocks.0.attn.qkv.weight"] = params["blocks.0.attn.qkv.weight"][:, :5]
    del params["norm.bias"]
    with pytest.raises(ConfigError, match=r"norm.bias is missing.*qkv.weight is \(96, 5\)"):
        compiler.compile_model(tiny.image.config, tiny.image.hw, params, TINY_MEMORY)


def test_parameter_shapes_are_the_float_models():
    for name in ("tiny", "m3vit-tiny"):
        config = replace(get_config(name), depth=2)
        state = parameters_of(config, seed=0)
        assert {k: v.shape for k, v in state.items()} == compiler.parameter_shapes(config)


def test_a_config_that_does_not_fit_the_parameter_set_is_refused():
    config = replace(get_config("tiny"), dim=12, heads=3)
    with pytest.raises(ConfigError, match="multiples of tile_in 16"):
        compiler.check_fit(config, get_hw_config("edge-moe"))


def test_a_full_queue_that_cannot_drain_is_named(tiny):
    # Five commands for the linear unit and no data: the fifth finds the queue full.
    program = [isa.command("linear", tokens=1, chunks=1, out_chunks=1)] * 5 + [isa.end()]
    with pytest.raises(ProgramError, match="linear's queue holds 4 entries"):
        machine.infer(tiny.image, tiny.codes[0], 0, memory_with(tiny.image, program))
