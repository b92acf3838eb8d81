DROP TABLE campaign_segments;
DROP TABLE campaigns;
