"""Detectors for faces, licence plates and personal text."""
