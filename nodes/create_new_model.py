"""Placeholder until this node's issue lands: nothing here pretends to work."""

from __future__ import annotations


def run_node(**kwargs):
    raise NotImplementedError("the create_new_model node is not implemented yet")


def add_cli_arguments(parser) -> None:
    pass


def run_cli(args) -> int:
    raise NotImplementedError("the create_new_model command is not implemented yet")
