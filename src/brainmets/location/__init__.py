"""Where lesions are: anatomical references (parcellation, mask, atlas, registered template) and lesion location."""
