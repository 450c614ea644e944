"""The eval suite: cases, metrics, runner and reports (see issue 6). Empty so far; the package
exists so the layout and the installed distribution match the design."""
