"""Follow-up over time: the timeline, lesion tracking in world space, growth, RANO-BM and volumetric responses,
and the Table 1 facts that need time."""
