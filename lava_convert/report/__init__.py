"""What a run measured and how it is shown: analysis (rates, raster), cost and energy
estimates, quantization reports, file descriptions, tables, figures and pages."""
