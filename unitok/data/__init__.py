"""Real data sources that ship with (or install into) unitok, never downloaded at run time."""
