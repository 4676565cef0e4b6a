"""Beam's DaskRunner, fixed for pipelines with several outputs and sinks.

    --runner=pipelines.beamio.dask.DaskRunner --dask_client_address=tcp://scheduler:8786

Beam's `apache_beam.runners.dask.dask_runner.DaskRunner` (2.77) turns each primitive transform
into a dask bag. Three shortcuts there break both stages of this project:

1. A ParDo with tagged outputs (`with_outputs`, and `Partition`, which is one) yields one bag
   that mixes every output with its tags stripped, and every consumer of any of its
   PCollections reads that whole bag: the `errors` branch of stage 1 also sees NoteSequences.
2. Only the bag of the last transform visited is computed, so of several sinks (our Parquet
   tables, stats.json) one runs and the others are silently skipped.
3. A bundle's outputs are collected before `finish_bundle` runs, so what it emits is lost.

This runner keeps Beam's translation of every transform and changes the wiring: bundles keep
their tags and finish_bundle's outputs (`_run_bundle`), a consumer reads only its own output of a
multi-output ParDo, and every bag that no transform consumes is computed. Side inputs are
persisted on the cluster (Beam's runner hands each bundle a bag that it computes again from
scratch, which made both stages 6x slower than the DirectRunner; now 2.5x, bench/pipeline.py).
"""

from __future__ import annotations

import functools

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.pipeline import AppliedPTransform, PipelineVisitor
from apache_beam.runners.common import DoFnInvoker
from apache_beam.runners.dask import dask_runner, transform_evaluator
from apache_beam.runners.dask.overrides import dask_overrides
from apache_beam.runners.dask.transform_evaluator import (
    TRANSLATIONS,
    DaskBagWindowedIterator,
    Flatten,
    NoOp,
)
from apache_beam.transforms.sideinputs import SideInputMap


def _run_bundle(items, invoker_args, invoker_kwargs, receivers) -> list:
    """One dask partition through a DoFn: main outputs as values, tagged ones as TaggedOutput,
    and what finish_bundle emits included."""
    receivers.values.clear()  # the receivers of the previous bundle this worker ran
    invoker = DoFnInvoker.create_invoker(*invoker_args, **invoker_kwargs)
    invoker.invoke_setup()
    invoker.invoke_start_bundle()
    for item in items:
        invoker.invoke_process(item)
    invoker.invoke_finish_bundle()
    invoker.invoke_teardown()
    outputs = [
        beam.pvalue.TaggedOutput(v.tag, v.value.value)
        if isinstance(v, beam.pvalue.TaggedOutput)
        else v.value
        for v in receivers.values
    ]
    receivers.values.clear()
    return outputs


class _ParDo(transform_evaluator.ParDo):
    """Beam's translation of a ParDo, with `_run_bundle` in place of its bundle function."""

    def apply(self, input_bag, side_inputs=None):
        original = transform_evaluator.apply_dofn_to_bundle
        transform_evaluator.apply_dofn_to_bundle = _run_bundle  # read once, as the graph is built
        try:
            return super().apply(input_bag, side_inputs)
        finally:
            transform_evaluator.apply_dofn_to_bundle = original


_TRANSLATIONS = {**TRANSLATIONS, beam.ParDo: _ParDo}


def _is_output(item, tag: str | None) -> bool:
    if isinstance(item, beam.pvalue.TaggedOutput):
        return item.tag == tag
    return tag is None


def _untag(item):
    return item.value if isinstance(item, beam.pvalue.TaggedOutput) else item


class _BagVisitor(PipelineVisitor):
    """Builds one dask bag per primitive transform, each reading its inputs' own outputs."""

    def __init__(self, bag_kwargs: dict):
        self.bag_kwargs = bag_kwargs
        self.bags: dict[AppliedPTransform, object] = {}
        self.consumed: set[AppliedPTransform] = set()
        self.side_bags: dict[AppliedPTransform, object] = {}  # computed once, held until done

    def _bag_of(self, pcoll: pvalue.PCollection):
        producer = pcoll.producer
        self.consumed.add(producer)
        bag = self.bags[producer]
        if len(producer.outputs) > 1:  # the producer's bag mixes all its outputs
            bag = bag.filter(functools.partial(_is_output, tag=pcoll.tag)).map(_untag)
        return bag

    def _side_bag(self, pcoll: pvalue.PCollection):
        """The side input's bag, persisted: bundles that read it fetch its results instead of
        computing its whole branch again each."""
        key = (pcoll.producer, pcoll.tag)
        if key not in self.side_bags:
            self.side_bags[key] = self._bag_of(pcoll).persist()
        return self.side_bags[key]

    def visit_transform(self, node: AppliedPTransform) -> None:
        op = _TRANSLATIONS.get(node.transform.__class__, NoOp)(node, bag_kwargs=self.bag_kwargs)
        inputs = [
            None if isinstance(p, pvalue.PBegin) else self._bag_of(p)
            for p in node.inputs
            if isinstance(p, pvalue.PBegin) or p.producer in self.bags
        ]
        kwargs: dict = {"input_bag": None, "side_inputs": None}
        if inputs:
            single = len(inputs) == 1 and not isinstance(op, Flatten)
            kwargs["input_bag"] = inputs[0] if single else inputs
        if node.side_inputs:
            kwargs["side_inputs"] = [
                SideInputMap(
                    type(side),
                    side._view_options(),
                    DaskBagWindowedIterator(self._side_bag(side.pvalue), side._window_mapping_fn),
                )
                for side in node.side_inputs
            ]
        self.bags[node] = op.apply(**kwargs)

    def leaves(self) -> list:
        return [bag for node, bag in self.bags.items() if node not in self.consumed]


class DaskRunner(dask_runner.DaskRunner):
    """Runs a pipeline on a dask.distributed cluster; every sink runs, and each output of a
    multi-output ParDo reaches only its own consumers."""

    def run_pipeline(self, pipeline, options):
        import dask
        import dask.distributed as ddist

        dask_options = options.view_as(dask_runner.DaskOptions).get_all_options(
            drop_default=True, current_only=True
        )
        bag_kwargs = dask_runner.DaskOptions._extract_bag_kwargs(dask_options)
        client = ddist.Client(**dask_options)
        pipeline.replace_all(dask_overrides())
        visitor = _BagVisitor(bag_kwargs)
        pipeline.visit(visitor)
        leaves = dask.optimize(*visitor.leaves())
        result = dask_runner.DaskRunnerResult(client, client.compute(list(leaves)))
        result.side_bags = visitor.side_bags  # their futures live as long as the result
        return result
