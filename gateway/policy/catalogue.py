"""The region catalogue: what a region name in a policy means in law (data in regions.yaml).

A policy says `eu`; the catalogue expands that to region ids, tells which country and
jurisdiction a region is in, which countries data flows to freely from an origin, and which
adequacy decisions (with dates and scope) and transfer bases exist.
"""

from __future__ import annotations

import datetime as dt
from datetime import date
from enum import StrEnum
from functools import cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from gateway.shipped import shipped_path

CATALOGUE_FILE = shipped_path("policy", "regions.yaml")
GROUPS = ("eu", "eea", "adequate")


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class BasisKind(StrEnum):
    ADEQUACY_SCOPE = "adequacy-scope"  # the recipient is inside a partial adequacy decision
    SAFEGUARD = "safeguard"  # Art. 46
    DEROGATION = "derogation"  # Art. 49


class TransferBasis(_Strict):
    article: str
    title: str
    kind: BasisKind
    countries: list[str] | None = None


class AdequacyDecision(_Strict):
    country: str = Field(description="country code, or a group (eea)")
    decision: str
    date: dt.date
    scope: str | None = None
    requires_basis: str | None = None
    expires: dt.date | None = None

    def in_force(self, on: dt.date) -> bool:
        return self.date <= on and (self.expires is None or on < self.expires)


class Jurisdiction(_Strict):
    name: str
    free_flow: list[str] = Field(default_factory=list)
    adequacy: list[AdequacyDecision] = Field(default_factory=list)

    @property
    def is_origin(self) -> bool:
        """Only jurisdictions with transfer rules can be a policy's origin."""
        return bool(self.free_flow)


class Country(_Strict):
    name: str
    jurisdiction: str
    eu: bool = False
    eea: bool = False


class Region(_Strict):
    country: str
    name: str


class UnknownName(ValueError):
    """A region, country, group or jurisdiction the catalogue does not know."""


class RegionCatalogue(_Strict):
    catalogue_version: str
    transfer_bases: dict[str, TransferBasis]
    groups: dict[str, str]
    jurisdictions: dict[str, Jurisdiction]
    countries: dict[str, Country]
    regions: dict[str, Region]

    @model_validator(mode="after")
    def _references_resolve(self) -> RegionCatalogue:
        for code, country in self.countries.items():
            if country.jurisdiction not in self.jurisdictions:
                raise ValueError(f"country {code}: unknown jurisdiction {country.jurisdiction}")
        for rid, region in self.regions.items():
            if region.country not in self.countries:
                raise ValueError(f"region {rid}: unknown country {region.country}")
        for jid, jur in self.jurisdictions.items():
            for name in jur.free_flow:
                self._countries_named(name)
            for decision in jur.adequacy:
                self._countries_named(decision.country)
                if decision.requires_basis and decision.requires_basis not in self.transfer_bases:
                    raise ValueError(f"{jid}: unknown basis {decision.requires_basis}")
        return self

    def _countries_named(self, name: str) -> set[str]:
        if name == "eu":
            return {c for c, v in self.countries.items() if v.eu}
        if name == "eea":
            return {c for c, v in self.countries.items() if v.eea}
        if name in self.countries:
            return {name}
        raise UnknownName(f"{name!r} is neither a country code nor the group eu/eea")

    def jurisdiction(self, jid: str) -> Jurisdiction:
        try:
            return self.jurisdictions[jid]
        except KeyError:
            raise UnknownName(f"unknown jurisdiction {jid!r}") from None

    def region(self, rid: str) -> Region:
        try:
            return self.regions[rid]
        except KeyError:
            raise UnknownName(f"unknown region {rid!r}") from None

    def free_flow_countries(self, origin: str) -> set[str]:
        """The origin's free-flow area, and always its own countries: data that stays under
        the law it came from is not a transfer (a US dataset processed in the US)."""
        home = {code for code, c in self.countries.items() if c.jurisdiction == origin}
        named = (self._countries_named(n) for n in self.jurisdiction(origin).free_flow)
        return home.union(*named)

    def adequacy_for(self, origin: str, country: str, *, on: date) -> AdequacyDecision | None:
        for decision in self.jurisdiction(origin).adequacy:
            if country in self._countries_named(decision.country) and decision.in_force(on):
                return decision
        return None

    def adequate_countries(self, origin: str, *, on: date) -> set[str]:
        found: set[str] = set()
        for decision in self.jurisdiction(origin).adequacy:
            if decision.in_force(on):
                found |= self._countries_named(decision.country)
        return found

    def expand(self, names: list[str], *, origin: str, on: date) -> set[str]:
        """Region ids named by a policy list (groups, country codes, region ids)."""
        regions: set[str] = set()
        for name in names:
            if name in self.regions:
                regions.add(name)
                continue
            if name == "adequate":
                countries = self.adequate_countries(origin, on=on)
            elif name in ("eu", "eea") or name in self.countries:
                countries = self._countries_named(name)
            else:
                raise UnknownName(
                    f"{name!r} is not in the region catalogue (a group {', '.join(GROUPS)}, "
                    "a country code or a region id)"
                )
            regions |= {rid for rid, r in self.regions.items() if r.country in countries}
        return regions

    def check_name(self, name: str) -> None:
        """Raise UnknownName unless `name` can appear in a policy's region list."""
        if name in self.regions or name in GROUPS or name in self.countries:
            return
        raise UnknownName(
            f"{name!r} is not in the region catalogue: expected a group "
            f"({', '.join(GROUPS)}), a country code (e.g. DE) or a region id (e.g. eu-de)"
        )


@cache
def load_catalogue(path: Path = CATALOGUE_FILE) -> RegionCatalogue:
    """Parse and check the catalogue once per process (it ships with the code)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return RegionCatalogue.model_validate(data)
