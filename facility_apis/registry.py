"""The facilities skybroker ships, by SkyPortal's ``api_classname``: one line per facility.

Adding a facility: write its module (a :class:`facility_apis.base.FacilityAPI`; its settings are the
``facilities.<settings_section>`` block of the config) and add one line here.
"""

from __future__ import annotations

import importlib
from typing import Any

FACILITIES: dict[str, str] = {
    "LCO": "facility_apis.lco:LCOAPI",  # any LCO-portal instrument: the instrument's name is its type
    "SINISTROAPI": "facility_apis.lco:SINISTROAPI",
    "SPECTRALAPI": "facility_apis.lco:SPECTRALAPI",
    "MUSCATAPI": "facility_apis.lco:MUSCATAPI",
    "FLOYDSAPI": "facility_apis.lco:FLOYDSAPI",
    "QHY600API": "facility_apis.lco:QHY600API",
    "NRESAPI": "facility_apis.lco:NRESAPI",
    "SOARGHTSAPI": "facility_apis.lco:SOARGHTSAPI",
    "SOARGHTSIMAGERAPI": "facility_apis.lco:SOARGHTSIMAGERAPI",
    "SOARTSPECAPI": "facility_apis.lco:SOARTSPECAPI",
    "GENERICAPI": "facility_apis.generic:GenericAPI",
    "SEDMAPI": "facility_apis.sedm:SEDMAPI",
}


def load(api_classname: str):
    module, _, cls = FACILITIES[api_classname].partition(":")
    return getattr(importlib.import_module(module), cls)


def build(facilities_config: Any) -> dict:
    """Every registered adapter, configured with its section of ``facilities_config`` (``cfg.facilities``)."""
    out = {}
    for key in FACILITIES:
        api = load(key)()
        section = api.settings_section
        api.configure(getattr(facilities_config, section, None) if section else None)
        out[key] = api
    return out


def configure(api, facilities_config: Any):
    """An adapter made elsewhere (tests, ``default_facilities``) given its settings if it has none."""
    if getattr(api, "settings", None) is None and api.settings_section:
        api.configure(getattr(facilities_config, api.settings_section, None))
    return api
