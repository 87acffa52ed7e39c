"""The one version string of lomit_fast: the package metadata (pyproject, dynamic), the Python
package, the C++ extension (compiled in by setup.py) and exported files all read it from here."""
__version__ = "0.1.0"
