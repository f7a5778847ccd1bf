"""Receptive field (placeholder: being written)."""


def receptive_field(spec):
    raise NotImplementedError


def receptive_field_table(spec):
    raise NotImplementedError
